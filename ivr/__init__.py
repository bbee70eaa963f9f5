"""Voice IVR: Twilio Voice webhooks under ``/ivr/twilio/``, answered with TwiML.

Place in the architecture: a channel adapter. Calls arrive at
``POST /ivr/twilio/voice``; flows described as data (``ivr/flows/*.yaml``) are
interpreted by one engine that opens tickets, looks them up and queues callers for
agents through :mod:`contact.service`. Status updates by voice go out through a
``ChannelAdapter`` for ``Channel.voice`` registered by the composition root, like
the SMS gateway. Nothing in :mod:`contact` imports this package.
"""
