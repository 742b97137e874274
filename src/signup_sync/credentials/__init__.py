"""Source secrets: which environment variables a source may name, and values stored encrypted.

``Secrets`` (``sources.secrets``) is the one place a connector's secrets are read.
"""
