//! Reliable delivery of control messages (RFC 2661 §5.8 and Appendix A).
