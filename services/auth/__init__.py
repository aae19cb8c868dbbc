"""Identity and access: users, groups, tokens, sessions and CSRF, and the rules of who may do what.

``access`` holds the rules (pure functions and their SQL form); ``models`` the tables; ``accounts``
the operations on them; ``seam`` the one place a request's caller is read.
"""
