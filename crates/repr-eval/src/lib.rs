//! Embedding extraction, kNN classification, linear probes and retrieval metrics (the evaluation toolkit; supervised accuracy lives in repr-train for now).
