"""node_exporter's Linux collectors beyond ``health``, one module per node_exporter family (as node_exporter
has one file per collector), each switchable in agent.yml under its node_exporter name (``collectors.filefd``,
``collectors.pressure`` ...). Names, labels, types and units follow node_exporter 1.5; tests compare each with
Debian's prometheus-node-exporter on the same fixture tree (``--path.procfs``/``--path.sysfs``)."""
