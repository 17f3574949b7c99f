"""jobcast: hand long-running jobs to RabbitMQ and follow every step of them live."""
