"""The index stores behind one interface: the protocol, the manifest, and each store's package."""
