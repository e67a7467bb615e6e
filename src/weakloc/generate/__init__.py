"""Dataset generation: masks, inpainters, full-image generators and the dataset writer."""
