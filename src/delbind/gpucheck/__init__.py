"""The offline GPU check: a bundle built where the package index is reachable (``bundle``), and the check it runs on
an air-gapped GPU machine (``check``). docs/performance.md#the-offline-gpu-check says how to use them."""

BUNDLE_LIMIT_BYTES = 64 * 2**20  # what an air-gapped cluster's transfer allows us to assume (issue: 64 MiB)
