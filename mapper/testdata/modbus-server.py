#!/usr/bin/python3
"""A Modbus TCP server (pymodbus, Debian's python3-pymodbus) for the Modbus mapper's tests: unit 1 with 100 coils,
discrete inputs, holding and input registers, all 0, addressed from 0 (zero_mode). Listens on 127.0.0.1:PORT.
Usage: modbus-server.py PORT"""
import asyncio
import logging
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartAsyncTcpServer

logging.basicConfig(level=logging.WARNING)
port = int(sys.argv[1])
block = lambda: ModbusSequentialDataBlock(0, [0] * 100)
unit = ModbusSlaveContext(di=block(), co=block(), hr=block(), ir=block(), zero_mode=True)
context = ModbusServerContext(slaves={1: unit}, single=False)
asyncio.run(StartAsyncTcpServer(context=context, address=("127.0.0.1", port)))
