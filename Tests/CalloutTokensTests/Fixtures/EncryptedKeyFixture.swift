/// TEST-ONLY key material. Generated once with
/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc -pass pass:test-only-passphrase`
/// (PBES2, PBKDF2-HMAC-SHA256, 2048 iterations, AES-256-CBC). It protects nothing.
enum EncryptedKeyFixture {
    static let testOnlyPassphrase = "test-only-passphrase"

    static let testOnlyEncryptedP256PKCS8PEM = """
        -----BEGIN ENCRYPTED PRIVATE KEY-----
        MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhKhtOSa3nrlAICCAAw
        DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEHcZymc33BThQ4TadnzqUUsEgZCd
        ceDxFx/UMctIlO974RSaLBjpNP0Yo7ED2zahAWdAnq3FPwzXO7WMf/Fp7k+NFrI0
        qpZzXTyfG2tntkyeEM5iKhlBXs/xBB7vJ4ml649/YEfSs8SBI9PZDZewUexvnM/A
        AxLsTA2PE5be8PK9a2AbURrGBU5F/DJWBk0DAYGAimYvWMo0tX/MjGmHQuiRCp8=
        -----END ENCRYPTED PRIVATE KEY-----
        """

    /// The public key of the fixture above (`openssl pkey -pubout`).
    static let testOnlyPublicKeyPEM = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAESH6RsxdF2vAUEZim3PWorlJDQOUP
        wpLnsWq+xqDcPgag8jfsGW/9aG7+jluh+t31LrSHrAZM2YuKf9y18S8kPA==
        -----END PUBLIC KEY-----
        """
}
