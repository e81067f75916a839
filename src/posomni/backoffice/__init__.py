"""The back office port (`client.BackOfficeClient`) and its adapters: Conexxus REST and the null client."""
