"""Ablation of SD-BNN's parts on the embedded digits set: ``benchmarks/ablation.py``
with its defaults (``digits_cnv``, SGD lr 0.1, batch 64, cosine, EDE, all five
variants).

    python benchmarks/ablation_digits.py --epochs 30 --seeds 0 1 2 --jobs 2
"""
from ablation import main

if __name__ == "__main__":
    main()
