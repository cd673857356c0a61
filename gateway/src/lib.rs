//! HTTP: the issuer's gateway, the merchant server and the client purses and merchants use.
