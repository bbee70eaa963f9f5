"""Channel adapters: each knows its wire format and nothing about workflow.

They implement the port in :mod:`contact.channels` and are registered by the
composition root (:mod:`contact.app`). Imports point inward only: channels import
``contact``; ``contact`` never imports them (the composition root aside).
"""
