"""Operator notifications: the Telegram Bot API edge and how alerts become messages."""
