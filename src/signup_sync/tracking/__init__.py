"""The Segment/RudderStack-compatible tracking API: messages, identities, touchpoints."""
