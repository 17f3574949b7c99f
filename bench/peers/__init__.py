"""The peers a user would pick instead of jobcast, each as a worker and a client process."""
