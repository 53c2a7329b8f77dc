"""Tests for microprompts.testing: the chat-model doubles users test their flows with."""
