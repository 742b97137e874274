"""Erasure on request: delete a person's data and keep a keyed-hash tombstone of them."""
