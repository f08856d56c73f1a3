import os

# Keep every test on one thread per process: the CI machine has 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
