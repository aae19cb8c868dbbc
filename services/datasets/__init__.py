"""Datasets: uploads, archives unpacked in a worker process, immutable content-hashed versions, inspection."""
