"""CSV exports of leads, events and conversions, streamed in keyset batches."""
