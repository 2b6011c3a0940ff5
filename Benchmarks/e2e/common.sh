# Shared by run.sh and fleet.sh (sourced): ports, waiting, test certificates. Loopback only.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() { # port, seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 did not open" >&2
    return 1
}

# Writes into DIR a throwaway CA (ca.pem), a leaf for localhost and 127.0.0.1 signed by it
# (leaf.pem, leaf.key) and a self-signed assertion signing pair (signing.key, signing.crt).
make_certificates() { # dir
    (
        cd "$1"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" -keyout ca.key -out ca.pem \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout leaf.key -out leaf.csr
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >leaf.ext
        openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile leaf.ext -out leaf.pem
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench signing" -keyout signing.key -out signing.crt
    ) >/dev/null 2>&1
}
