"""Pure values every layer shares: no database, no sockets, no files (see README, "For developers")."""
