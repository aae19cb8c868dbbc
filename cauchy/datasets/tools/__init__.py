"""Dataset tools (torch-free): format recognition, validation, statistics and split making."""
