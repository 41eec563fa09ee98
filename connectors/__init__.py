"""Edges: file readers, Kafka, HTTP, webhooks, registries."""
