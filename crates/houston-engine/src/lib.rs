//! The per-agent runtime: agent folder, session store, model providers, tool loop and its HTTP server.
