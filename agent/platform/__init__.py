"""Operating-system readers shared by the collectors: /proc parsers, mount tables, adjtimex(2)."""
