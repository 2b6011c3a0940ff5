print("callout-proxy")
