"""Deployment: export a trained model as a SavedModel and a `.tflite` (`export`), load either to
classify (`serving`), and the command that classifies images with it (`predict`)."""
