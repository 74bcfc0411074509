"""repro: instruments and claim checks for *Visualizing and Understanding the Effectiveness of BERT*.

The library is organised by concern: ``data`` (GLUE tasks, local and hub sources, tokenization cache),
``models`` (named encoders, pretrained vs scratch initialisation, layer groups), ``training`` (Adam(W) runs that
record their trajectory and resume), ``landscape`` (parameter-space directions, 1D/2D surfaces, trajectory
projection), ``curvature`` (Hessian-vector products, Lanczos, Hutchinson, sharpness), ``metrics`` (flatness,
straightness, agreement), ``plots`` and ``report`` (read saved results only), ``bench`` (performance JSON).
"""

__version__ = "0.1.0"
