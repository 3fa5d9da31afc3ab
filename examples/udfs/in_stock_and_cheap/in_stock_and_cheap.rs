//! in_stock_and_cheap.rs: the filter of in_stock_and_cheap.c in Rust: keeps a document when
//! stock > 0 and price <= max_price (a NaN price never passes).
#![no_std]
#[macro_use]
extern crate quidditch;

qd_panic_handler!();

#[no_mangle]
pub extern "C" fn in_stock_and_cheap(stock: i64, price: f64, max_price: f64) -> i32 {
    (stock > 0 && price <= max_price) as i32
}

qd_batch!(in_stock_and_cheap__batch =>
          in_stock_and_cheap(stock: i64, price: f64, max_price: f64) -> i32);
