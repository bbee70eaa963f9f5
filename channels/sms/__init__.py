"""SMS: Twilio Messaging webhooks in, the Twilio REST API (or the dev gateway) out."""
