"""Security audits: weak passwords, SSH settings, local service credentials, exposed ports."""
