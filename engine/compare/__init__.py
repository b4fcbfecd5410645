"""The Keras comparison: the same network built in tf.keras (`keras_twin`), weights copied and
compared (`weights`), and the engine's training measured against `model.fit` (`parity`)."""
