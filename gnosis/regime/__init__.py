"""Regime detection: the detector, its HMM, and which agents each regime switches on."""
