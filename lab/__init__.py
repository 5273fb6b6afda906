"""The namespace lab: the harness around vrrpd, not part of it.

Topologies in network namespaces (:mod:`lab.netns`), runners for vrrpd, HAProxy and
keepalived, the PACS reference deployment and its demo (``python -m lab.demo``, i.e.
``scripts/lab``).  The lab tests and the benchmarks share it.  It runs from a checkout (it reads
``etc/`` and ``scripts/``), is never installed, and ``vrrpd`` never imports it
(``tests/test_packaging.py``).
"""
