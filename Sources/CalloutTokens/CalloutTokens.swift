// CalloutTokens
