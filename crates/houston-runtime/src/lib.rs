//! Runtime manager, activator and sandbox backends.
