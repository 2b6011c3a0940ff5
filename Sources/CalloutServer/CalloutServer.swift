// CalloutServer
