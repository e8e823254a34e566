"""Model families for the loop engine, one module each: ``ddpm`` (conditional DDPM with classifier-free
guidance), ``gmm`` (2-D Gaussian mixtures), ``wgan`` (WGAN-GP), ``flow`` (affine coupling flow), ``stylegan``
(StyleGAN2 with truncation)."""
