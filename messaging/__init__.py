"""The RabbitMQ runtime every jobcast process runs on: connecting, declaring the topology,
consuming, confirmed publishing, the progress RPC and dead letters.

On aio-pika; FastStream only where it carries a message itself (messaging/faststream.py builds
its objects from contracts/topology.py). Imports nothing of jobcast but `contracts`.
"""
