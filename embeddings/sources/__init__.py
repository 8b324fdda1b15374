"""Where articles arrive from: the user's corpus folder, its watcher, web pages and feeds."""
