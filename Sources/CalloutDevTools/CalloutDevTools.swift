// CalloutDevTools
