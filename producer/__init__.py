"""Where jobs enter: POST /schedule, the jobcast.schedule queue, and the client library."""
