"""Business logic of cosmos: plain functions that views, consumers, admin and tasks call."""
