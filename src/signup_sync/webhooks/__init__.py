"""Webhook receivers: verify, store raw in the inbox, acknowledge; a worker processes later."""
