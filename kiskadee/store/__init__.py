"""Every SQL statement: the database, its migrations and models, the catalog, the job queue and the results."""
