"""tranche.doctoral"""
