"""Character-level LSTM baseline (Karpathy's char-rnn): model, training, ONNX export, reference decoding."""
