"""tranche.core"""
