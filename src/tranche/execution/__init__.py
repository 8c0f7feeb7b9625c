"""tranche.execution"""
