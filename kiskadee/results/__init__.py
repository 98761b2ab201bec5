"""What people read: the diff between versions, the text of show, status and diff, and the exports."""
