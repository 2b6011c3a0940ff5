// CalloutCore
